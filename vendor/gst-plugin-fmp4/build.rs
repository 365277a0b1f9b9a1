// The upstream build script asks gst-plugin-version-helper for these; a
// vendored copy is always the release it was taken from.
fn main() {
    println!("cargo:rustc-env=COMMIT_ID=RELEASE");
    println!("cargo:rustc-env=BUILD_REL_DATE=2025-07-16");
}
