//! README's table of supported extensions lists exactly the registry.

use iptables_atomic::ext::{codecs, Kind};
use iptables_atomic::Family;

fn expected_table() -> String {
    let mut rows: Vec<(String, String)> = codecs()
        .into_iter()
        .map(|c| {
            let kind = if c.kind() == Kind::Match {
                "match"
            } else {
                "target"
            };
            let fams: Vec<&str> = c
                .families()
                .iter()
                .map(|f| match f {
                    Family::V4 => "IPv4",
                    Family::V6 => "IPv6",
                })
                .collect();
            let mut revs: Vec<String> = Vec::new();
            for f in c.families() {
                for r in c.revisions(*f) {
                    if !revs.contains(&r.to_string()) {
                        revs.push(r.to_string());
                    }
                }
            }
            let alias = if c.is_alias() {
                format!(" (alias of {})", c.kernel_name())
            } else {
                String::new()
            };
            let sort = format!("{}{}", kind, c.name().to_lowercase());
            (
                sort,
                format!(
                    "| `{}` | {kind}{alias} | {} | {} |",
                    c.name(),
                    fams.join(", "),
                    revs.join(", ")
                ),
            )
        })
        .collect();
    rows.sort();
    let mut t = String::from(
        "| extension | kind | families | revisions (highest first) |\n|---|---|---|---|\n",
    );
    for (_, r) in rows {
        t.push_str(&r);
        t.push('\n');
    }
    t
}

#[test]
fn readme_lists_every_extension() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let table = expected_table();
    assert!(
        readme.contains(&table),
        "README.md's extension table is out of date; replace it with:\n\n{table}"
    );
}
