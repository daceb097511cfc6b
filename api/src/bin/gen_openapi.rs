//! Writes the OpenAPI description to `openapi.json` (or the path given), from the code.

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "openapi.json".into());
    std::fs::write(&path, api::openapi::spec_json())?;
    println!("wrote {path}");
    Ok(())
}
