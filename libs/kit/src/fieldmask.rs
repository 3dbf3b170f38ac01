//! Update masks (AIP-134): which fields of a resource an Update call replaces. The paths are
//! checked once against the fields a resource lets callers change, so a handler applies only
//! paths it knows.

use std::collections::HashSet;

use crate::error::too_long;
use crate::{Error, Violations};

/// The paths an update mask names (`given`), each one of `updatable`; an empty mask means every
/// updatable field (a full replacement). INVALID_ARGUMENT names `update_mask.paths[i]` for each
/// path that is not updatable (read-only or unknown) and each repeated one, and
/// `update_mask.paths` when it names more paths than there are updatable fields (only that
/// many are checked, and only short paths are echoed, so the error stays small).
pub fn paths(given: &[String], updatable: &[&'static str]) -> Result<Vec<&'static str>, Error> {
    if given.is_empty() {
        return Ok(updatable.to_vec());
    }
    let mut v = Violations::new();
    v.check(
        given.len() > updatable.len(),
        "update_mask.paths",
        format!("at most {} paths, one per updatable field", updatable.len()),
    );
    let mut out: Vec<&'static str> = Vec::with_capacity(given.len());
    let mut seen = HashSet::with_capacity(given.len());
    for (i, p) in given.iter().enumerate().take(updatable.len()) {
        let field = format!("update_mask.paths[{i}]");
        let shown = if too_long(p, 64) {
            "the path".to_owned()
        } else {
            format!("{p:?}")
        };
        match updatable.iter().find(|u| **u == p.as_str()) {
            None => v.add(
                field,
                format!("{shown} cannot be updated (updatable: {})", updatable.join(", ")),
            ),
            Some(u) if !seen.insert(*u) => v.add(field, format!("{shown} is named twice")),
            Some(u) => out.push(u),
        }
    }
    v.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATABLE: &[&str] = &["display_name", "status", "brief.budget"];

    fn mask(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn no_paths_mean_every_updatable_field() {
        assert_eq!(paths(&[], UPDATABLE).unwrap(), UPDATABLE);
    }

    #[test]
    fn a_mask_keeps_its_order_and_names_each_bad_path() {
        assert_eq!(
            paths(&mask(&["brief.budget", "status"]), UPDATABLE).unwrap(),
            ["brief.budget", "status"]
        );
        let err = paths(&mask(&["status", "name", "status"]), UPDATABLE).unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["update_mask.paths[1]", "update_mask.paths[2]"]);
        assert!(err.violations()[0].description.contains("updatable: display_name"));
        assert!(err.violations()[1].description.contains("twice"));
    }

    #[test]
    fn a_long_mask_is_refused_whole_without_echoing_long_paths() {
        let long = "x".repeat(10_000);
        let err = paths(&mask(&[&long, "a", "b", "c"]), UPDATABLE).unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "update_mask.paths",
                "update_mask.paths[0]",
                "update_mask.paths[1]",
                "update_mask.paths[2]"
            ]
        );
        assert!(err.violations()[1].description.starts_with("the path cannot"));
    }
}
