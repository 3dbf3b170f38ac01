//! The scan: one pass over the index's slots that drops what a hard filter removes, scores
//! the rest and keeps the best in a bounded heap. A large index is scanned in parallel
//! slices whose results merge exactly as one scan's would.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use chorus_proto::matching::FilterCount;

use super::plan::{FILTERS, Plan};
use super::score::Scored;

/// Most threads one scan uses, and the fewest entries worth a thread of their own.
pub(super) const MAX_SCAN_THREADS: usize = 8;
const MIN_SLICE: usize = 50_000;

/// How many slices a scan of `slots` entries runs in, given `threads`: no more than
/// [`MAX_SCAN_THREADS`], none smaller than [`MIN_SLICE`], at least one.
fn slices(threads: usize, slots: usize) -> usize {
    threads.min(MAX_SCAN_THREADS).min(slots / MIN_SLICE).max(1)
}

/// Ordered so a max-heap's top is the worst kept candidate.
struct Worst(Scored);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// What a scan found.
#[derive(Debug)]
pub struct Ranking {
    /// The best candidates, best first.
    pub top: Vec<Scored>,
    pub matched: u64,
    pub considered: u64,
    /// Removed per filter, in [`FILTERS`] order.
    pub removed: [u64; FILTERS.len()],
}

impl Ranking {
    pub fn filter_counts(&self) -> Vec<FilterCount> {
        FILTERS
            .iter()
            .zip(self.removed)
            .map(|(f, n)| FilterCount {
                filter: (*f).to_owned(),
                removed_count: n as i64,
            })
            .collect()
    }
}

impl Plan<'_> {
    /// Scans the whole index on at most `threads` threads (the service passes its cores) and
    /// keeps the best `keep`. A large index is scanned in parallel slices whose results merge
    /// exactly as one scan's would.
    pub fn run(&self, keep: usize, threads: usize) -> Ranking {
        let slots = self.index.slots().len();
        let threads = slices(threads, slots);
        let mut parts: Vec<Ranking> = if threads == 1 {
            vec![self.scan(0..slots, keep)]
        } else {
            let per = slots.div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = (t * per)..((t + 1) * per).min(slots);
                        scope.spawn(move || self.scan(range, keep))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut all = parts.pop().unwrap_or_else(|| self.scan(0..0, keep));
        for p in parts {
            all.matched += p.matched;
            all.considered += p.considered;
            for (a, b) in all.removed.iter_mut().zip(p.removed) {
                *a += b;
            }
            all.top.extend(p.top);
        }
        all.top.sort_by(Scored::rank_cmp);
        all.top.truncate(keep);
        all
    }

    /// One slice of the scan.
    fn scan(&self, range: std::ops::Range<usize>, keep: usize) -> Ranking {
        let mut removed = [0u64; FILTERS.len()];
        let mut considered = 0u64;
        let mut matched = 0u64;
        let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(keep.min(1 << 16) + 1);
        let start = range.start;
        for (i, e) in self.index.slots()[range].iter().enumerate() {
            if !e.live {
                continue;
            }
            considered += 1;
            let (hot, segment) = match self.filter(e) {
                Ok(found) => found,
                Err(f) => {
                    removed[f] += 1;
                    continue;
                }
            };
            matched += 1;
            let s = self.score((start + i) as u32, e, hot, segment);
            if heap.len() < keep {
                heap.push(Worst(s));
            } else if let Some(worst) = heap.peek()
                && s.rank_cmp(&worst.0) == Ordering::Less
            {
                heap.pop();
                heap.push(Worst(s));
            }
        }
        let mut top: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
        top.sort_by(Scored::rank_cmp);
        Ranking {
            top,
            matched,
            considered,
            removed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chorus_proto::types::CompensationKind;

    use super::super::tests_support::{brief, plan};
    use super::*;
    use crate::domain::index::Index;
    use crate::domain::index::tests::influencer;
    #[test]
    fn a_scan_splits_into_slices_of_at_least_min_slice_on_at_most_the_threads_given() {
        assert_eq!(slices(1, 10 * MIN_SLICE), 1);
        assert_eq!(slices(3, 10 * MIN_SLICE), 3);
        assert_eq!(slices(64, 10 * MIN_SLICE), MAX_SCAN_THREADS);
        assert_eq!(slices(4, 2 * MIN_SLICE + 7), 2, "no slice smaller than MIN_SLICE");
        assert_eq!(slices(4, MIN_SLICE - 1), 1);
        assert_eq!(slices(0, 10 * MIN_SLICE), 1);
    }

    #[test]
    fn a_parallel_scan_finds_what_one_scan_finds() {
        // Three slices' worth and a few more, so the last slice is shorter than the others.
        let mut ix = Index::new();
        for n in 1..=(3 * MIN_SLICE as u128 + 7) {
            let city = ["Austin", "Denver", "Houston"][(n % 3) as usize];
            let mut inf = influencer(n, city, 1_000 + (n as i64 * 7919) % 9_000, 1);
            inf.compensation_accepted = vec![CompensationKind::Cash as i32];
            ix.upsert(&inf);
        }
        let p = plan(&ix, &brief());
        let one = p.run(300, 1);
        assert_eq!(one.top.len(), 300);
        assert!(one.matched > 300 && one.considered == ix.slots().len() as u64);
        let ids = |r: &Ranking| r.top.iter().map(|s| (s.id, s.score.to_bits())).collect::<Vec<_>>();
        for threads in [2, 3] {
            let parallel = p.run(300, threads);
            assert_eq!(parallel.matched, one.matched, "{threads} threads");
            assert_eq!(parallel.considered, one.considered, "{threads} threads");
            assert_eq!(parallel.removed, one.removed, "{threads} threads");
            assert_eq!(ids(&parallel), ids(&one), "{threads} threads");
        }
    }
}
