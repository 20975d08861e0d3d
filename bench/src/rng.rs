//! A small seeded generator (SplitMix64) for the workloads' choices: file
//! sizes, tree shapes, random offsets. Not cryptographic; it only has to be
//! reproducible from the printed seed, so a run can be repeated exactly.

/// SplitMix64 (Steele, Lea, Flood 2014): one add and a bijective mix per draw.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); 0 when n is 0. The modulo bias is below 2^-40 for
    /// the n the workloads use, far under anything a benchmark could show.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Log-uniform in [min, max]: as many files between 1 and 2 KiB as between
    /// 64 and 128 KiB. Most files are small and most bytes are in the few large
    /// ones, the skew of real source and home-directory trees.
    pub fn log_uniform(&mut self, min: u64, max: u64) -> u64 {
        let (lo, hi) = (min.max(1) as f64, max.max(min).max(1) as f64);
        let v = (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp();
        (v.round() as u64).clamp(min.max(1), max.max(min).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let a: Vec<u64> = {
            let mut r = Rng::new(5);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(5);
        assert_eq!(a, (0..8).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(6).next_u64(), a[0]);
    }

    #[test]
    fn draws_stay_in_range_and_log_uniform_is_skewed() {
        let mut r = Rng::new(1);
        let mut small = 0;
        let mut sum = 0u64;
        for _ in 0..10_000 {
            let v = r.log_uniform(256, 128 << 10);
            assert!((256..=128 << 10).contains(&v));
            if v < 8 << 10 {
                small += 1;
            }
            sum += v;
            assert!(r.below(7) < 7);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        // ln(32)/ln(512) = 5/9 of the files are under 8 KiB, yet the mean is
        // about (128 KiB - 256) / ln(512), near 21 KB.
        assert!((5000..6100).contains(&small), "{small}");
        let mean = sum / 10_000;
        assert!((18_000..24_000).contains(&mean), "{mean}");
        assert_eq!(r.below(0), 0);
    }
}
