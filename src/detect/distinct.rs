//! How many distinct clients a run saw, in bounded memory: exact (a set) up to
//! [`EXACT_MAX`] addresses, then a HyperLogLog sketch (2^14 registers, 16 KiB, standard error
//! 0.8 %). The detector forgets idle clients (`Detector` eviction), so the number of clients it
//! tracks is not the number it saw; this is.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;

/// Addresses counted exactly; past this, estimated.
pub const EXACT_MAX: usize = 100_000;
const P: u32 = 14;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DistinctIps {
    exact: HashSet<IpAddr, foldhash::fast::RandomState>,
    /// HyperLogLog registers once past `EXACT_MAX` (empty before).
    registers: Vec<u8>,
}

impl DistinctIps {
    pub fn insert(&mut self, ip: IpAddr) {
        if self.registers.is_empty() {
            self.exact.insert(ip);
            if self.exact.len() > EXACT_MAX {
                self.registers = vec![0; 1 << P];
                for ip in std::mem::take(&mut self.exact) {
                    self.add(ip);
                }
            }
        } else {
            self.add(ip);
        }
    }

    fn add(&mut self, ip: IpAddr) {
        let h = hash(ip);
        let i = (h >> (64 - P)) as usize;
        let rest = (h << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(i) {
            *r = (*r).max(rank);
        }
    }

    /// Whether [`Self::count`] is exact.
    pub fn is_exact(&self) -> bool {
        self.registers.is_empty()
    }

    pub fn count(&self) -> u64 {
        if self.registers.is_empty() {
            return self.exact.len() as u64;
        }
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|r| 2f64.powi(-(*r as i32))).sum();
        let e = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count() as f64;
        let e = if e <= 2.5 * m && zeros > 0.0 {
            m * (m / zeros).ln()
        } else {
            e
        };
        e.round() as u64
    }
}

/// A hash of the address that is the same in every process and version (the sketch is saved).
fn hash(ip: IpAddr) -> u64 {
    let bits = match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128 | (1u128 << 64),
        IpAddr::V6(v6) => u128::from(v6),
    };
    mix(mix(bits as u64) ^ (bits >> 64) as u64)
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_within_two_percent() {
        let mut d = DistinctIps::default();
        for i in 0..1000u32 {
            d.insert(IpAddr::from(i.to_be_bytes()));
            d.insert(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!((d.count(), d.is_exact()), (1000, true));
        for n in [300_000u32, 1_000_000] {
            let mut d = DistinctIps::default();
            for i in 0..n {
                d.insert(IpAddr::from((i.wrapping_mul(2_654_435_761)).to_be_bytes()));
            }
            assert!(!d.is_exact());
            let err = (d.count() as f64 - n as f64).abs() / n as f64;
            assert!(err < 0.02, "{n}: {} ({err})", d.count());
        }
    }
}
