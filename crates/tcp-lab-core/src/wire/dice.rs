//! The wire's randomness (`--loss`): a small PRNG from a seed, so a lossy run can be repeated
//! with `--seed` (the seed a run used is printed in its header).

use std::time::SystemTime;

/// xorshift64, plenty for dropping packets; its state comes from the seed through splitmix64, so
/// every seed (0 and neighbours included) gives a good, distinct sequence.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // xorshift stays at 0 forever from 0.
        Dice(z.max(1))
    }

    /// A uniform number in [0, 100).
    pub fn roll(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    }
}

/// A seed for a run that names none: from the clock, short enough to type back after `--seed`.
pub fn clock_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let n = t.as_nanos() as u64;
    (n ^ (n >> 32)) & 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drops(seed: u64, loss: f64, n: usize) -> Vec<bool> {
        let mut d = Dice::new(seed);
        (0..n).map(|_| d.roll() < loss).collect()
    }

    #[test]
    fn the_same_seed_drops_the_same_packets() {
        assert_eq!(drops(42, 30.0, 200), drops(42, 30.0, 200));
        assert_ne!(drops(42, 30.0, 200), drops(43, 30.0, 200));
        // Seed 0 is a seed like any other (a bare xorshift would never move from it).
        let zero = drops(0, 50.0, 200);
        assert!(zero.iter().any(|d| *d) && zero.iter().any(|d| !*d));
    }

    #[test]
    fn rolls_are_uniform_in_0_to_100() {
        let mut d = Dice::new(7);
        let rolls: Vec<f64> = (0..10_000).map(|_| d.roll()).collect();
        assert!(rolls.iter().all(|r| (0.0..100.0).contains(r)));
        // A 30 % loss drops about 30 % of packets (binomial: ±4.6 points is 10 sigma).
        let lost = rolls.iter().filter(|r| **r < 30.0).count();
        assert!((2_540..=3_460).contains(&lost), "{lost} of 10000");
    }

    #[test]
    fn clock_seeds_are_short() {
        assert!(clock_seed() <= u64::from(u32::MAX));
    }
}
