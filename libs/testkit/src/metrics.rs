//! Reading the metrics a service records, from a test: [`Metrics::install`] puts a Prometheus
//! recorder in the test process (once; every service the test starts records into it), and
//! [`Metrics::counter`] reads one series, as a scrape would see it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The test process's metrics recorder.
#[derive(Debug, Clone)]
pub struct Metrics(PrometheusHandle);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

impl Metrics {
    /// Installs the recorder, or returns the one installed. Install it before the services
    /// start: what is recorded before it is lost. Run such a test in a process of its own
    /// (nextest does), since metrics are global to the process.
    pub fn install() -> Metrics {
        let handle = HANDLE.get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("install a metrics recorder (is another one installed?)")
        });
        Metrics(handle.clone())
    }

    /// The value of counter `name` with exactly `labels`; 0 when it has not been recorded.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let text = self.0.render();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .find(|(n, l, _)| *n == name && same_labels(l, labels))
            .map_or(0, |(_, _, value)| value as u64)
    }
}

/// A series' name, its labels and its value.
type Sample<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// `name{k="v",...} value` as its parts.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, Vec::new(), value));
    };
    let labels = labels
        .strip_suffix('}')?
        .split(',')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.trim_matches('"')))
        })
        .collect();
    Some((name, labels, value))
}

fn same_labels(found: &[(&str, &str)], wanted: &[(&str, &str)]) -> bool {
    found.len() == wanted.len() && wanted.iter().all(|w| found.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse_with_and_without_labels() {
        let (name, labels, value) =
            parse_sample(r#"chorus_events_handled_total{topic="chorus.registry",group="matching-index"} 42"#).unwrap();
        assert_eq!(name, "chorus_events_handled_total");
        assert!(same_labels(
            &labels,
            &[("group", "matching-index"), ("topic", "chorus.registry")]
        ));
        assert!(!same_labels(&labels, &[("group", "matching-index")]));
        assert_eq!(value, 42.0);
        assert_eq!(
            parse_sample("up 1").map(|(n, l, v)| (n, l.len(), v)),
            Some(("up", 0, 1.0))
        );
    }
}
