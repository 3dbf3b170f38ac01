//! A read cache of stored influencers by id, so GetInfluencer and BatchGet skip the database
//! for hot profiles. Every write evicts what it changed after its commit (read-your-writes in
//! this replica); other replicas evict on the registry's own events, a few milliseconds later.
//! A read that raced a write never stores what it read: puts carry the eviction count seen
//! before the read and are dropped if any eviction happened since.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chorus_proto::registry::Influencer;

#[derive(Debug)]
pub(super) struct ReadCache {
    capacity: usize,
    evictions: AtomicU64,
    map: Mutex<HashMap<String, Influencer>>,
}

impl ReadCache {
    /// A cache of at most `capacity` profiles; 0 disables it.
    pub(super) fn new(capacity: usize) -> Self {
        ReadCache {
            capacity,
            evictions: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Read before going to the database; pass it to [`ReadCache::put`].
    pub(super) fn stamp(&self) -> u64 {
        self.evictions.load(Ordering::Acquire)
    }

    pub(super) fn get(&self, id: &str) -> Option<Influencer> {
        if self.capacity == 0 {
            return None;
        }
        self.map.lock().ok()?.get(id).cloned()
    }

    /// Stores what a read returned, unless something was evicted since `stamp`.
    pub(super) fn put(&self, stamp: u64, id: &str, influencer: &Influencer) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if self.evictions.load(Ordering::Acquire) != stamp {
                return;
            }
            if map.len() >= self.capacity {
                // Cheap bounded memory: start over rather than track recency.
                map.clear();
            }
            map.insert(id.to_owned(), influencer.clone());
        }
    }

    pub(super) fn evict(&self, id: &str) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            self.evictions.fetch_add(1, Ordering::AcqRel);
            map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(name: &str) -> Influencer {
        Influencer {
            display_name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let c = ReadCache::new(10);
        let stamp = c.stamp();
        c.evict("a"); // a write committed while the read was in flight
        c.put(stamp, "a", &inf("old"));
        assert!(c.get("a").is_none());
        let stamp = c.stamp();
        c.put(stamp, "a", &inf("new"));
        assert_eq!(c.get("a").unwrap().display_name, "new");
        c.evict("a");
        assert!(c.get("a").is_none());
    }

    #[test]
    fn capacity_bounds_memory_and_zero_disables() {
        let c = ReadCache::new(2);
        for id in ["a", "b", "c"] {
            c.put(c.stamp(), id, &inf(id));
        }
        assert!(c.map.lock().unwrap().len() <= 2);
        let off = ReadCache::new(0);
        off.put(off.stamp(), "a", &inf("a"));
        assert!(off.get("a").is_none());
    }
}
