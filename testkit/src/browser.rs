//! Browser tests: runs a Node script that drives Debian's Chromium with `playwright-core`
//! (both installed by `scripts/setup.sh`; no browser download), so a Rust test can
//! start the real collector, seed it, and hand the page to a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Chromium the tests drive (Debian's package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The workspace root (the parent of the testkit's own directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

/// What a browser script printed, and whether it passed.
pub struct ScriptRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `node <script> <args…>` from the directory holding the script, whose
/// `node_modules` must hold `playwright-core`. Fails with a clear message (not a skip)
/// when Node, Chromium or the package is missing: `scripts/setup.sh` installs them.
pub fn run_node_script(script: &Path, args: &[&str]) -> ScriptRun {
    let dir = script.parent().expect("script in a directory");
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)"
    );
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{}/node_modules/playwright-core is missing: run scripts/setup.sh",
        dir.display()
    );
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("TERN_CHROMIUM", CHROMIUM)
        .output()
        .expect("running node (Debian package nodejs; scripts/setup.sh installs npm)");
    ScriptRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
