//! Update masks (AIP-134): which fields of a resource an Update call replaces. The paths are
//! checked once against the fields a resource lets callers change, so a handler applies only
//! paths it knows.

use prost_types::FieldMask;

use crate::{Error, Violations};

/// The paths `mask` names, each one of `updatable`; an absent or empty mask means every
/// updatable field (a full replacement). INVALID_ARGUMENT names `update_mask.paths[i]` for each
/// path that is not updatable (read-only or unknown) and for each repeated path.
pub fn paths(mask: Option<&FieldMask>, updatable: &[&'static str]) -> Result<Vec<&'static str>, Error> {
    let given = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if given.is_empty() {
        return Ok(updatable.to_vec());
    }
    let mut v = Violations::new();
    let mut out: Vec<&'static str> = Vec::with_capacity(given.len());
    let mut seen = std::collections::HashSet::with_capacity(given.len());
    for (i, p) in given.iter().enumerate() {
        let field = format!("update_mask.paths[{i}]");
        match updatable.iter().find(|u| **u == p.as_str()) {
            None => v.add(
                field,
                format!("{p:?} cannot be updated (updatable: {})", updatable.join(", ")),
            ),
            Some(u) if !seen.insert(*u) => v.add(field, format!("{p:?} is named twice")),
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

    fn mask(paths: &[&str]) -> FieldMask {
        FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn no_mask_means_every_updatable_field() {
        assert_eq!(paths(None, UPDATABLE).unwrap(), UPDATABLE);
        assert_eq!(paths(Some(&mask(&[])), UPDATABLE).unwrap(), UPDATABLE);
    }

    #[test]
    fn a_mask_keeps_its_order_and_names_each_bad_path() {
        assert_eq!(
            paths(Some(&mask(&["brief.budget", "status"])), UPDATABLE).unwrap(),
            ["brief.budget", "status"]
        );
        let err = paths(Some(&mask(&["status", "name", "status", "brief"])), UPDATABLE).unwrap_err();
        let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["update_mask.paths[1]", "update_mask.paths[2]", "update_mask.paths[3]"]
        );
        assert!(err.violations()[0].description.contains("updatable: display_name"));
        assert!(err.violations()[1].description.contains("twice"));
    }
}
