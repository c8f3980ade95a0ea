//! Plain aligned tables for the `list` subcommands.

use std::io::{self, Write};

/// Prints `rows` under `headers`, columns padded to their widest cell.
pub(super) fn print<const N: usize>(
    headers: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) -> io::Result<()> {
    let rows: Vec<[String; N]> = rows.collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = io::stdout().lock();
    let mut line = |cells: Vec<&str>| -> io::Result<()> {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    line(headers.to_vec())?;
    for row in &rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}
