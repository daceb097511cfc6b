//! Tells the tests which optional servers they may use, so a test that needs PostgreSQL or Redis
//! is listed as ignored, with the variable to set, in `cargo test`'s summary when it is missing,
//! instead of passing without having run. Changing the variable rebuilds the crate. The build
//! script of api, worker and domain (`build = ...` in their Cargo.toml).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests, redis_tests)");
    for (variable, cfg) in [
        ("TEST_POSTGRES_URL", "postgres_tests"),
        ("TEST_REDIS_URL", "redis_tests"),
    ] {
        println!("cargo::rerun-if-env-changed={variable}");
        if std::env::var(variable).is_ok_and(|v| !v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
