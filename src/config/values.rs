//! Values of options that are more than a string: durations with units, and secrets read from
//! files (`*_FILE`, as container users keep them).

use std::path::Path;
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;

/// The longest duration any option takes, 100 of humantime's years (365.25 days): a time
/// past it overflows the clock's arithmetic or the dates that show it.
const LONGEST: Duration = Duration::from_secs(100 * 31_557_600);

/// A duration: a bare number is seconds (`30`), or a number with units (`500ms`, `10s`, `2m`,
/// `1h 30m`), up to 100 years.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("'{text}' is not a duration such as 30, 500ms, 10s or 2m ({e})")
        })?,
    };
    if duration > LONGEST {
        return Err(format!("'{text}' is longer than 100 years"));
    }
    Ok(duration)
}

/// A duration longer than zero.
pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("the duration must be longer than 0".to_owned()),
        duration => Ok(duration),
    }
}

/// A secret kept in a file: its text without the line end after it.
pub fn secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// Whether the secret in the file that option `file` names replaces the one that option `value`
/// holds: unless `value` was given on the command line and `file` was not. Both given on the
/// command line is an error.
pub fn file_wins(matches: &ArgMatches, value: &str, file: &str) -> Result<bool, String> {
    let flag = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    match (flag(value), flag(file)) {
        (true, true) => Err(format!(
            "--{} cannot be used with --{}",
            file.replace('_', "-"),
            value.replace('_', "-")
        )),
        (true, false) => Ok(false),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds_and_units_are_understood() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("100y"), Ok(LONGEST));
        for too_long in ["101y", "18446744073709551615"] {
            assert!(
                duration(too_long)
                    .unwrap_err()
                    .contains("longer than 100 years")
            );
        }
        assert!(
            duration("soon")
                .unwrap_err()
                .contains("'soon' is not a duration")
        );
        assert!(duration("-1").is_err());
        assert!(positive_duration("0s").is_err());
    }

    #[test]
    fn a_secret_file_loses_its_line_end_only() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("token");
        std::fs::write(&path, " s3cret \r\n").unwrap();
        assert_eq!(secret_file(&path).unwrap(), " s3cret ");
        std::fs::write(&path, "\n").unwrap();
        assert!(secret_file(&path).unwrap_err().contains("is empty"));
        assert!(secret_file(&folder.path().join("missing")).is_err());
    }
}
