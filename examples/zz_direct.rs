use iptables_atomic::ext::AssumeLatest;
use iptables_atomic::restore::{encode_text, RestoreOptions};
use iptables_atomic::Family;
use std::time::Instant;
fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let opts = RestoreOptions::new(Family::V4);
    for _ in 0..3 {
        let t = Instant::now();
        let e = encode_text(&text, &opts, &AssumeLatest);
        let t1 = t.elapsed();
        let e = e.unwrap();
        println!("direct {:?}", t1);
        for t in &e {
            let b = t.entries();
            let words = b.len() / 8;
            let nz = b.chunks(8).filter(|w| w.iter().any(|&x| x != 0)).count();
            let nzb = b.iter().filter(|&&x| x != 0).count();
            println!(
                "{} bytes {} words {} nonzero words {} ({:.1}%) nonzero bytes {:.1}%",
                t.name,
                b.len(),
                words,
                nz,
                100.0 * nz as f64 / words as f64,
                100.0 * nzb as f64 / b.len() as f64
            );
        }
    }
}
