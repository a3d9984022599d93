//! Port allocation (business rule 3): the lowest free port of a configurable range; a port
//! in use is never handed out.

use std::collections::BTreeSet;

use crate::model::{Application, Port, PortRange};

/// Why no port could be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port range {start}-{end} is empty (start is after end)")]
    EmptyRange { start: Port, end: Port },
    #[error("every port of {start}-{end} is in use")]
    Exhausted { start: Port, end: Port },
}

/// Every port the applications use, primary and additional.
pub fn ports_in_use<'a>(applications: impl IntoIterator<Item = &'a Application>) -> BTreeSet<Port> {
    applications
        .into_iter()
        .flat_map(|application| application.execution.all_ports())
        .collect()
}

/// The lowest port of `range` that is not in `in_use`.
pub fn allocate_port(range: PortRange, in_use: &BTreeSet<Port>) -> Result<Port, PortError> {
    if range.start > range.end {
        return Err(PortError::EmptyRange {
            start: range.start,
            end: range.end,
        });
    }
    (range.start.get()..=range.end.get())
        .filter_map(|number| Port::parse(i64::from(number)).ok())
        .find(|port| !in_use.contains(port))
        .ok_or(PortError::Exhausted {
            start: range.start,
            end: range.end,
        })
}

/// The lowest `count` ports of `range` that are neither in `in_use` nor in `own` (the ports
/// the application already lists), for an application's additional ports (rule 3 for each).
pub fn allocate_additional(
    range: PortRange,
    in_use: &BTreeSet<Port>,
    own: &[Port],
    count: usize,
) -> Result<Vec<Port>, PortError> {
    let mut taken: BTreeSet<Port> = in_use.iter().chain(own).copied().collect();
    let mut ports = Vec::with_capacity(count);
    for _ in 0..count {
        let port = allocate_port(range, &taken)?;
        taken.insert(port);
        ports.push(port);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(number: i64) -> Port {
        Port::parse(number).expect("valid port")
    }

    fn range(start: i64, end: i64) -> PortRange {
        PortRange {
            start: port(start),
            end: port(end),
        }
    }

    #[test]
    fn additional_allocation_table() {
        // (range, other apps' ports, the app's own, count) → ports
        type Expected = Result<Vec<i64>, ()>;
        type Case<'a> = ((i64, i64), &'a [i64], &'a [i64], usize, Expected);
        let cases: &[Case] = &[
            ((8000, 8999), &[], &[8000], 1, Ok(vec![8001])),
            (
                (8000, 8999),
                &[8001, 8002],
                &[8000],
                2,
                Ok(vec![8003, 8004]),
            ),
            ((8000, 8999), &[], &[8000, 8001], 0, Ok(vec![])),
            ((8000, 8002), &[8001], &[8000], 1, Ok(vec![8002])),
            ((8000, 8002), &[8001], &[8000], 2, Err(())),
        ];
        for ((start, end), used, own, count, expected) in cases {
            let used: BTreeSet<Port> = used.iter().map(|n| port(*n)).collect();
            let own: Vec<Port> = own.iter().map(|n| port(*n)).collect();
            let got = allocate_additional(range(*start, *end), &used, &own, *count)
                .map(|ports| {
                    ports
                        .into_iter()
                        .map(|p| i64::from(p.get()))
                        .collect::<Vec<_>>()
                })
                .map_err(|_| ());
            assert_eq!(got, *expected, "{start}-{end} minus {used:?} and {own:?}");
        }
    }

    #[test]
    fn allocation_table() {
        let cases: &[(PortRange, &[i64], Result<i64, ()>)] = &[
            (range(8000, 8999), &[], Ok(8000)),
            (range(8000, 8999), &[8000, 8001, 8003], Ok(8002)),
            (range(8000, 8002), &[8000, 8001, 8002], Err(())),
            (range(8000, 8000), &[7999, 8001], Ok(8000)),
            (range(65535, 65535), &[], Ok(65535)),
            (range(9000, 8000), &[], Err(())),
        ];
        for (range, used, expected) in cases {
            let used: BTreeSet<Port> = used.iter().map(|n| port(*n)).collect();
            let got = allocate_port(*range, &used)
                .map(Port::get)
                .map(i64::from)
                .map_err(|_| ());
            assert_eq!(got, *expected, "{range:?} minus {used:?}");
        }
        assert!(matches!(
            allocate_port(range(9000, 8000), &BTreeSet::new()),
            Err(PortError::EmptyRange { .. })
        ));
        assert_eq!(
            allocate_port(range(8000, 8000), &BTreeSet::from([port(8000)]))
                .map_err(|e| e.to_string()),
            Err("every port of 8000-8000 is in use".to_owned())
        );
    }

    #[test]
    fn ports_in_use_collects_primary_and_additional_ports() {
        let mut first = crate::domain::testing::application("first");
        first.execution.port = Some(port(8000));
        first.execution.additional_ports = Some(vec![port(9000), port(9001)]);
        let mut second = crate::domain::testing::application("second");
        second.execution.port = Some(port(8001));
        let used = ports_in_use([&first, &second]);
        assert_eq!(
            used,
            [8000, 8001, 9000, 9001].map(port).into_iter().collect()
        );
        assert_eq!(allocate_port(range(8000, 8999), &used), Ok(port(8002)));
    }
}
