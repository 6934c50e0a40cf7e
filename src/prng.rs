//! A small deterministic pseudo-random generator, for the agent's io load (offsets, read/write
//! mix) and the runner's phase order in a shared boot:
//! SplitMix64 (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number Generators",
//! OOPSLA 2014; the constants of Vigna's reference `splitmix64.c`). Deterministic, so two runs
//! of a config issue the same sequence of requests; one generator per worker, seeded from the
//! worker's index, so the workers do not repeat each other.
//!
//! [`SplitMix64::below`] draws uniformly from `0..n` without modulo bias by Lemire's
//! multiply-and-reject method ("Fast Random Integer Generation in an Interval", ACM TOMACS
//! 2019).

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw from `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let n = n.max(1);
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u8) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// Puts `items` in a uniformly random order (Fisher and Yates, in Durstenfeld's in-place
    /// form: Knuth, TAOCP vol. 2, 3.4.2, Algorithm P).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shuffle_is_a_permutation_fixed_by_the_seed() {
        let order = |seed| {
            let mut v: Vec<u32> = (0..8).collect();
            SplitMix64::new(seed).shuffle(&mut v);
            v
        };
        let a = order(7);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        assert_eq!(a, order(7));
        // Among a few seeds, orders differ: the seed decides, not the input.
        assert!((0..4).map(order).any(|o| o != a));
        let mut one = [5];
        SplitMix64::new(1).shuffle(&mut one);
        assert_eq!(one, [5]);
    }

    /// The first outputs of Vigna's `splitmix64.c` seeded with 0.
    #[test]
    fn matches_the_reference_sequence() {
        let mut g = SplitMix64::new(0);
        let got: Vec<u64> = (0..3).map(|_| g.next_u64()).collect();
        assert_eq!(
            got,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    #[test]
    fn draws_are_in_range_deterministic_and_cover_it() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            seen[x as usize] += 1;
        }
        // Each of ten values about 1000 times.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(a.below(1), 0);
        let mut c = SplitMix64::new(8);
        assert_ne!(SplitMix64::new(7).next_u64(), c.next_u64());
    }

    #[test]
    fn percent_is_the_share_asked_for() {
        let mut g = SplitMix64::new(42);
        assert!((0..1000).all(|_| !g.percent(0)));
        assert!((0..1000).all(|_| g.percent(100)));
        let reads = (0..10_000).filter(|_| g.percent(30)).count();
        assert!((2_700..3_300).contains(&reads), "{reads}");
    }
}
