//! Runs the PHPT tests in `sdk-php-ext/phpt/` with PHP's own `run-tests.php` against the
//! extension built in this target directory, and fails if any of them fails.
//!
//! Needs `php8.2-cli` (scripts/setup.sh) and the extension built in the same profile as
//! this test (`cargo build -p tern-php`; scripts/test.sh does it).

use std::path::PathBuf;
use std::process::Command;

const RUN_TESTS: &str = "/usr/lib/php/20220829/build/run-tests.php";

fn extension_path() -> PathBuf {
    // target/<profile>/deps/phpt-<hash> → target/<profile>/libtern.so
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    profile_dir.join("libtern.so")
}

#[test]
fn every_phpt_test_passes_with_the_built_extension() {
    let so = extension_path();
    assert!(
        so.exists(),
        "{} is missing: build the extension first (cargo build -p tern-php)",
        so.display()
    );
    let run_tests = std::env::var("PHP_RUN_TESTS").unwrap_or_else(|_| RUN_TESTS.to_string());
    let php = std::env::var("TEST_PHP_EXECUTABLE").unwrap_or_else(|_| "/usr/bin/php".to_string());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("phpt");
    let scratch = std::env::temp_dir().join(format!("tern-phpt-run-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // The test scripts themselves (the parents) get their own socket and active file, so
    // nothing here touches a forwarder or an active file of the machine.
    let output = Command::new(&php)
        .arg(&run_tests)
        .args(["-q", "--show-diff", "-p", &php])
        .args(["-d", &format!("extension={}", so.display())])
        .args([
            "-d",
            &format!("tern.socket={}", scratch.join("none.sock").display()),
        ])
        .args([
            "-d",
            &format!("tern.active_path={}", scratch.join("active").display()),
        ])
        .arg(&dir)
        .env("NO_INTERACTION", "1")
        .env("TEST_PHP_EXECUTABLE", &php)
        .env("TMPDIR", &scratch)
        .output()
        .expect("run php run-tests.php (is php8.2-cli installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&scratch);
    let count = |label: &str| -> Option<u32> {
        text.lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let passed = count("Tests passed").unwrap_or(0);
    let failed = count("Tests failed").unwrap_or(u32::MAX);
    let borked = text.contains("BORKED");
    assert!(
        passed > 0 && failed == 0 && !borked,
        "PHPT tests failed ({passed} passed, {failed} failed):\n{text}"
    );
}
