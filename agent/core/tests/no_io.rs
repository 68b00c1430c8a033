//! The core stays without I/O: its manifest names none of the crates that do it, so a decision
//! here can always be tested as a pure function (issue 16).

#[test]
fn the_core_depends_on_no_io_crate() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("the core's manifest");
    let deps: toml::Table = toml::from_str(&manifest).expect("a TOML manifest");
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        for name in deps
            .get(section)
            .and_then(|d| d.as_table())
            .into_iter()
            .flat_map(|t| t.keys())
        {
            assert!(
                ![
                    "tokio",
                    "rusqlite",
                    "reqwest",
                    "hyper",
                    "axum",
                    "async-nats",
                    "tokio-postgres"
                ]
                .contains(&name.as_str()),
                "kassa-core must not depend on {name} ({section})"
            );
        }
    }
}
