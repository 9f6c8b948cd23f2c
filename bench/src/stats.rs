//! Counting what arrived: latency percentiles, and missing, duplicated, reordered messages.
use std::collections::HashSet;

/// What one receiver saw from one sender, who numbers messages 0, 1, 2…
#[derive(Default)]
pub struct Stream {
    seen: HashSet<u64>,
    highest: Option<u64>,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Stream {
    /// Records message `index`.
    pub fn record(&mut self, index: u64) {
        if !self.seen.insert(index) {
            self.duplicated += 1;
            return;
        }
        match self.highest {
            Some(h) if index < h => self.reordered += 1,
            _ => self.highest = Some(index),
        }
    }

    /// Distinct messages received.
    pub fn unique(&self) -> u64 {
        self.seen.len() as u64
    }
}

/// Latency samples in microseconds.
#[derive(Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn push(&mut self, micros: u64) {
        self.0.push(micros);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `p`-th percentile (0..=100) in milliseconds.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank] as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_and_reorders() {
        let mut s = Stream::default();
        for i in [0, 1, 3, 2, 2, 4] {
            s.record(i);
        }
        assert_eq!(s.unique(), 5);
        assert_eq!(s.duplicated, 1);
        assert_eq!(s.reordered, 1, "2 arrived after 3");
    }

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for v in 1..=100 {
            l.push(v * 1000);
        }
        assert_eq!(l.percentile_ms(50.0), 51.0);
        assert_eq!(l.percentile_ms(99.0), 99.0);
        assert_eq!(l.percentile_ms(100.0), 100.0);
    }
}
