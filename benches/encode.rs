//! Parse and encode speed on generated rulesets (no kernel needed).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iptables_atomic::ext::AssumeLatest;
use iptables_atomic::restore::{parse, RestoreOptions};
use iptables_atomic::{apply, blob, Family, Table};

fn ruleset(rules: usize) -> String {
    let mut s = String::from(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:svc - [0:0]\n",
    );
    for i in 0..rules {
        s.push_str(&format!(
            "-A svc -s 10.{}.{}.0/24 -p tcp -m tcp --dport {} -j ACCEPT\n",
            (i / 256) % 256,
            i % 256,
            1024 + i % 60000
        ));
    }
    s.push_str("-A INPUT -j svc\nCOMMIT\n");
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("restore");
    for n in [100usize, 10_000] {
        let text = ruleset(n);
        let opts = RestoreOptions::new(Family::V4);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("parse", n), &text, |b, t| {
            b.iter(|| parse(t, &opts, &AssumeLatest).unwrap())
        });
        let script = parse(&text, &opts, &AssumeLatest).unwrap();
        let table = apply::build_table(&script, false, Table::new("filter").unwrap()).unwrap();
        g.bench_with_input(BenchmarkId::new("encode", n), &table, |b, t| {
            b.iter(|| blob::encode_table(Family::V4, t).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
