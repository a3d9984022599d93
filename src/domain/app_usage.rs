//! Each running app's memory, CPU and disk use, read from the guest in one command: the
//! `/proc/<pid>/stat` line of every process, and `du -sk` of each app's deployment folder.
//!
//! An app is its process group: the agent starts the app's wrapper as a group leader, the
//! wrapper `exec`s the app, and what the app forks (CGI scripts, workers) stays in the group.
//! Memory is the sum of the group's resident sets; CPU is the group's user + system time
//! between two samples over the wall time between them, in % of one CPU (the guest has one),
//! so a busy app reads about 100; disk is the deployment folder (every release, not only the
//! live one).
//!
//! Linux on i386 counts times in 100 ticks a second (`USER_HZ`) and pages of 4 KiB.

use std::collections::BTreeMap;

/// Clock ticks a second in `/proc/<pid>/stat` (`USER_HZ`, 100 on x86).
pub const TICKS_PER_SECOND: f64 = 100.0;
/// Bytes of a page (`rss` is in pages).
pub const PAGE_BYTES: u64 = 4096;
/// The line between the `/proc` part and the `du` part of [`usage_script`]'s output.
const DU_MARKER: &str = "--webvm-du--";

/// The guest command (an `sh -c` script) that prints what [`parse_usage`] reads, for the
/// deployment folders given.
pub fn usage_script<'a>(folders: impl IntoIterator<Item = &'a str>) -> String {
    let mut script = String::from(
        "for f in /proc/[0-9]*/stat; do read -r l < \"$f\" 2>/dev/null && echo \"$l\"; done\n",
    );
    script.push_str("echo ");
    script.push_str(DU_MARKER);
    script.push('\n');
    let folders: Vec<String> = folders.into_iter().map(shell_quote).collect();
    if !folders.is_empty() {
        script.push_str("du -sk ");
        script.push_str(&folders.join(" "));
        script.push_str(" 2>/dev/null\n");
    }
    script.push_str("exit 0\n");
    script
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// One process, as its `/proc/<pid>/stat` line tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    pub pid: u32,
    pub process_group: u32,
    /// User + system time, in ticks.
    pub cpu_ticks: u64,
    /// Resident set, in pages.
    pub resident_pages: u64,
}

/// Reads a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from its last `)`.
pub fn parse_proc_stat(line: &str) -> Option<ProcessSample> {
    let (head, tail) = line.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    // After the name: 3 state, 4 ppid, 5 pgrp, …, 14 utime, 15 stime, …, 24 rss.
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3).copied();
    let process_group = field(5)?.parse().ok()?;
    let user: u64 = field(14)?.parse().ok()?;
    let system: u64 = field(15)?.parse().ok()?;
    let resident_pages = field(24)?.parse::<i64>().ok()?.max(0) as u64;
    Some(ProcessSample {
        pid,
        process_group,
        cpu_ticks: user + system,
        resident_pages,
    })
}

/// One sample of the guest: every process, and the size of each folder `du` could measure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageSample {
    pub processes: Vec<ProcessSample>,
    /// Folder → KiB.
    pub folders: BTreeMap<String, u64>,
}

/// Reads [`usage_script`]'s output; lines it can't read are skipped (a process may exit
/// while its line is read).
pub fn parse_usage(output: &str) -> UsageSample {
    let mut sample = UsageSample::default();
    let mut in_du = false;
    for line in output.lines() {
        if line.trim() == DU_MARKER {
            in_du = true;
        } else if in_du {
            if let Some((size, folder)) = line.split_once('\t') {
                if let Ok(size) = size.trim().parse() {
                    sample.folders.insert(folder.to_owned(), size);
                }
            }
        } else if let Some(process) = parse_proc_stat(line) {
            sample.processes.push(process);
        }
    }
    sample
}

/// A process group's totals in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupTotals {
    pub cpu_ticks: u64,
    pub resident_pages: u64,
    pub processes: usize,
}

impl UsageSample {
    /// The totals of the process group led by `leader`; `None` when no process is in it.
    pub fn group(&self, leader: u32) -> Option<GroupTotals> {
        let mut totals = GroupTotals::default();
        for process in self
            .processes
            .iter()
            .filter(|process| process.process_group == leader)
        {
            totals.cpu_ticks += process.cpu_ticks;
            totals.resident_pages += process.resident_pages;
            totals.processes += 1;
        }
        (totals.processes > 0).then_some(totals)
    }
}

/// An app's figures, in the seed's units (`ApplicationMetrics`: MB, %, MB).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AppUsage {
    pub memory_mb: f64,
    pub cpu_percent: f64,
    pub disk_mb: Option<f64>,
}

/// The figures of the app whose group `leader` leads, from this sample and the group's
/// totals in the previous one (`(totals, at_ms)`; CPU is 0 without one, or when the clock or
/// the counters went back, as after a restart). `None` when the group has no process.
pub fn app_usage(
    sample: &UsageSample,
    leader: u32,
    folder: &str,
    now_ms: f64,
    previous: Option<(GroupTotals, f64)>,
) -> Option<(AppUsage, GroupTotals)> {
    let totals = sample.group(leader)?;
    let cpu_percent = previous
        .filter(|(before, at)| totals.cpu_ticks >= before.cpu_ticks && now_ms > *at)
        .map(|(before, at)| {
            let busy_seconds = (totals.cpu_ticks - before.cpu_ticks) as f64 / TICKS_PER_SECOND;
            let wall_seconds = (now_ms - at) / 1000.0;
            (busy_seconds / wall_seconds * 100.0).clamp(0.0, 100.0)
        })
        .unwrap_or(0.0);
    let usage = AppUsage {
        memory_mb: (totals.resident_pages * PAGE_BYTES) as f64 / 1_048_576.0,
        cpu_percent,
        disk_mb: sample.folders.get(folder).map(|kib| *kib as f64 / 1024.0),
    };
    Some((usage, totals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, name: &str, pgrp: u32, utime: u64, stime: u64, rss: i64) -> String {
        format!(
            "{pid} ({name}) S 1 {pgrp} {pgrp} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 500 2000000 {rss} 4294967295 0 0 0 0"
        )
    }

    #[test]
    fn stat_lines_table() {
        type Expected = Option<(u32, u32, u64, u64)>;
        let cases: &[(String, Expected)] = &[
            (
                stat(120, "httpd", 120, 7, 3, 150),
                Some((120, 120, 10, 150)),
            ),
            (
                stat(121, "odd name) (x", 120, 1, 1, 20),
                Some((121, 120, 2, 20)),
            ),
            (stat(2, "kthreadd", 0, 0, 0, 0), Some((2, 0, 0, 0))),
            (stat(9, "neg", 9, 0, 0, -1), Some((9, 9, 0, 0))),
            ("".to_owned(), None),
            ("12 (cut".to_owned(), None),
            ("12 (short) S 1 12".to_owned(), None),
            (
                "x (name) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 6 7".to_owned(),
                None,
            ),
        ];
        for (line, expected) in cases {
            let got = parse_proc_stat(line).map(|sample| {
                (
                    sample.pid,
                    sample.process_group,
                    sample.cpu_ticks,
                    sample.resident_pages,
                )
            });
            assert_eq!(got, *expected, "{line}");
        }
    }

    fn sample() -> UsageSample {
        let output = [
            stat(1, "init", 1, 50, 50, 100),
            stat(120, "httpd", 120, 10, 5, 256),
            stat(130, "echo.cgi", 120, 3, 2, 256),
            stat(200, "python3", 200, 400, 100, 2560),
            "garbage".to_owned(),
            DU_MARKER.to_owned(),
            "2048\t/srv/apps/hello".to_owned(),
            "12\t/srv/apps/it's".to_owned(),
            "not a size\t/srv/apps/x".to_owned(),
        ]
        .join("\n");
        parse_usage(&output)
    }

    #[test]
    fn output_is_read_into_processes_and_folders() {
        let sample = sample();
        assert_eq!(sample.processes.len(), 4);
        assert_eq!(
            sample.folders,
            BTreeMap::from([
                ("/srv/apps/hello".to_owned(), 2048),
                ("/srv/apps/it's".to_owned(), 12)
            ])
        );
        assert_eq!(
            sample.group(120),
            Some(GroupTotals {
                cpu_ticks: 20,
                resident_pages: 512,
                processes: 2
            })
        );
        assert_eq!(sample.group(999), None);
    }

    #[test]
    fn usage_table() {
        let sample = sample();
        let before = GroupTotals {
            cpu_ticks: 10,
            resident_pages: 0,
            processes: 1,
        };
        // (leader, folder, now, previous) → (memory MB, cpu %, disk MB)
        type Previous = Option<(GroupTotals, f64)>;
        type Expected = Option<(f64, f64, Option<f64>)>;
        let cases: &[(u32, &str, f64, Previous, Expected)] = &[
            // 10 ticks (0.1 s) busy in 1 s: 10 %; 512 pages = 2 MB; 2048 KiB = 2 MB.
            (
                120,
                "/srv/apps/hello",
                2000.0,
                Some((before, 1000.0)),
                Some((2.0, 10.0, Some(2.0))),
            ),
            // The first sample has no CPU figure.
            (
                120,
                "/srv/apps/hello",
                2000.0,
                None,
                Some((2.0, 0.0, Some(2.0))),
            ),
            // Counters went back (a restart): 0, not negative.
            (
                120,
                "/srv/apps/hello",
                2000.0,
                Some((
                    GroupTotals {
                        cpu_ticks: 99,
                        ..before
                    },
                    1000.0,
                )),
                Some((2.0, 0.0, Some(2.0))),
            ),
            // The clock did not move: 0, not infinite.
            (
                120,
                "/srv/apps/hello",
                1000.0,
                Some((before, 1000.0)),
                Some((2.0, 0.0, Some(2.0))),
            ),
            // 490 ticks in 1 s on one CPU is capped at 100 %.
            (
                200,
                "/srv/apps/py",
                2000.0,
                Some((before, 1000.0)),
                Some((10.0, 100.0, None)),
            ),
            (999, "/srv/apps/hello", 2000.0, None, None),
        ];
        for (leader, folder, now, previous, expected) in cases {
            let got = app_usage(&sample, *leader, folder, *now, *previous)
                .map(|(usage, _)| (usage.memory_mb, usage.cpu_percent, usage.disk_mb));
            assert_eq!(got, *expected, "group {leader} at {now}");
        }
    }

    #[test]
    fn the_script_quotes_folders_and_always_succeeds() {
        let script = usage_script(["/srv/apps/hello", "/srv/apps/it's"]);
        assert!(
            script.contains("du -sk '/srv/apps/hello' '/srv/apps/it'\\''s' 2>/dev/null"),
            "{script}"
        );
        assert!(script.contains(DU_MARKER));
        assert!(script.ends_with("exit 0\n"));
        assert!(!usage_script([]).contains("du -sk"));
    }
}
