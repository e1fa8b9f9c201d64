//! Reading pytest's outcome: a run passes only when pytest succeeded, ran
//! tests, and none failed, errored or was skipped, deselected or x-failed
//! (`tests/python_package.rs`, `tests/console.rs`).

/// Asserts that a pytest run whose exit status was `success` and whose
/// standard output is `stdout` passed every test it had (see the module's
/// documentation); `report` is shown when it did not. Returns pytest's
/// summary line.
///
/// # Panics
/// When the run did not pass.
pub fn assert_all_passed(success: bool, stdout: &str, report: &str) -> String {
    let summary = stdout
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let counts = counts(summary);
    let count = |outcome: &str| {
        counts
            .iter()
            .find(|(_, what)| what.starts_with(outcome))
            .map_or(0, |(n, _)| *n)
    };
    assert!(success, "{report}");
    assert!(count("passed") > 0, "pytest ran no tests\n{report}");
    for outcome in [
        "failed",
        "error",
        "skipped",
        "xfailed",
        "xpassed",
        "deselected",
    ] {
        assert_eq!(count(outcome), 0, "pytest: {outcome}\n{report}");
    }
    summary.trim().to_owned()
}

/// The counts of pytest's summary line (`== 3 passed, 1 skipped in 2.10s ==`
/// or, with `-q`, `3 passed, 1 skipped in 2.10s`): `[(3, "passed"), (1,
/// "skipped")]`.
pub fn counts(line: &str) -> Vec<(u32, String)> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .filter(|word| !word.is_empty())
        .collect();
    words
        .windows(2)
        .filter_map(|pair| Some((pair[0].parse().ok()?, pair[1].to_owned())))
        .collect()
}
