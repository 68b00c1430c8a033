// Compiles the `.slint` screens into Rust at build time, with the English, Swedish and German
// catalogues from `lang/` bundled in, so that the binary needs no files beside it at run time.
fn main() {
    // Debug info carries the accessible labels the UI tests find controls by; it costs a little
    // binary size and nothing at run time.
    let config = slint_build::CompilerConfiguration::new()
        .with_debug_info(true)
        .with_bundled_translations("lang")
        // Catalogue entries carry no msgctxt: a string means the same on every screen.
        .with_default_translation_context(slint_build::DefaultTranslationContext::None);
    if let Err(e) = slint_build::compile_with_config("ui/kassa.slint", config) {
        panic!("the .slint screens do not compile: {e}");
    }
}
