//! Keyed random streams: each (seed, purpose, a, b) gets its own ChaCha stream, so work can be split
//! across threads in any way without changing a single draw.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A stream for one purpose (a short tag) and two keys (e.g. firm index and batch index).
pub fn stream(seed: u64, purpose: &str, a: u64, b: u64) -> ChaCha8Rng {
    // FNV-1a over the purpose, mixed with the keys by splitmix64.
    let mut h: u64 = 0xcbf29ce484222325;
    for byte in purpose.bytes() {
        h ^= byte as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let mut s = [0u8; 32];
    let mut x = seed ^ h;
    for (i, chunk) in s.chunks_mut(8).enumerate() {
        x = splitmix(x ^ a.rotate_left(17 * i as u32) ^ b.rotate_left(31 + 7 * i as u32));
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    ChaCha8Rng::from_seed(s)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}
