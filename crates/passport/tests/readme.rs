//! The README's error table (README: HTTP) against [`ErrorCode`]: every code this server emits
//! has a row, each row names only codes we have, and the status it gives is the code's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use passport::ErrorCode;

const README: &str = include_str!("../../../README.md");

/// The rows of the table headed `| error | status |`: (codes in the first cell, status cell).
fn error_rows() -> Vec<(Vec<String>, String)> {
    let table = README
        .split("| error | status |")
        .nth(1)
        .expect("the README has an error table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let codes = cells[1]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, code)| code.to_owned())
                .collect();
            (codes, cells[2].to_owned())
        })
        .collect()
}

#[test]
fn every_error_code_is_in_the_readme_with_its_status() {
    let rows = error_rows();
    for code in ErrorCode::ALL {
        let (_, status) = rows
            .iter()
            .find(|(codes, _)| codes.iter().any(|c| c == code.as_str()))
            .unwrap_or_else(|| panic!("README error table has no row for {code}"));
        assert!(
            status.contains(&code.http_status().to_string()),
            "README gives {code} the status {status:?}, the code says {}",
            code.http_status()
        );
    }
    for (codes, _) in &rows {
        for listed in codes {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == listed),
                "README lists {listed}, which no ErrorCode emits"
            );
        }
    }
}
