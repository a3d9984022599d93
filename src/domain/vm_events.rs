//! What a running app's log says about the VM it runs in (entries of source `webvm`): the
//! VM's state changes that matter to the app, worded for the app's owner. Loading and
//! booting are steps, not events; the VM's own panel shows them.

use crate::model::{LogLevel, WebVMState};

/// The `webvm` log entry for the VM going from `from` to `to`, if that change concerns a
/// running app. `how` says where a VM that became ready came from ("restored from the
/// saved VM state", "booted cold"); `reason` is the VM's error message.
pub fn vm_event(
    from: WebVMState,
    to: WebVMState,
    how: Option<&str>,
    reason: Option<&str>,
) -> Option<(LogLevel, String)> {
    use WebVMState as S;
    let with = |text: Option<&str>, prefix: &str| {
        text.filter(|text| !text.trim().is_empty())
            .map(|text| format!("{prefix}{}", text.trim()))
            .unwrap_or_default()
    };
    match (from, to) {
        (S::Hibernating, S::Ready) => Some((
            LogLevel::Info,
            "VM resumed: the app runs on from where it was paused".to_owned(),
        )),
        (S::Loading | S::Booting, S::Ready) => {
            Some((LogLevel::Info, format!("VM ready{}", with(how, ": "))))
        }
        (S::Ready, S::Hibernating) => Some((
            LogLevel::Info,
            "VM hibernating: the app is paused and saved with it".to_owned(),
        )),
        (_, S::Error) if from != S::Error => {
            Some((LogLevel::Error, format!("VM failed{}", with(reason, ": "))))
        }
        (S::Ready | S::Hibernating, S::Unloaded) => Some((
            LogLevel::Warn,
            "VM shut down: the app's process went with it".to_owned(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WebVMState as S;

    #[test]
    fn vm_event_table() {
        type Expected = Option<(LogLevel, &'static str)>;
        type Text = Option<&'static str>;
        let cases: &[(S, S, Text, Text, Expected)] = &[
            (
                S::Ready,
                S::Hibernating,
                None,
                None,
                Some((
                    LogLevel::Info,
                    "VM hibernating: the app is paused and saved with it",
                )),
            ),
            (
                S::Hibernating,
                S::Ready,
                None,
                None,
                Some((
                    LogLevel::Info,
                    "VM resumed: the app runs on from where it was paused",
                )),
            ),
            (
                S::Loading,
                S::Ready,
                Some("restored from the saved VM state"),
                None,
                Some((LogLevel::Info, "VM ready: restored from the saved VM state")),
            ),
            (
                S::Booting,
                S::Ready,
                None,
                None,
                Some((LogLevel::Info, "VM ready")),
            ),
            (
                S::Booting,
                S::Ready,
                Some("  "),
                None,
                Some((LogLevel::Info, "VM ready")),
            ),
            (
                S::Ready,
                S::Error,
                None,
                Some("3 heartbeats missed"),
                Some((LogLevel::Error, "VM failed: 3 heartbeats missed")),
            ),
            (
                S::Loading,
                S::Error,
                None,
                None,
                Some((LogLevel::Error, "VM failed")),
            ),
            (S::Error, S::Error, None, Some("again"), None),
            (
                S::Ready,
                S::Unloaded,
                None,
                None,
                Some((
                    LogLevel::Warn,
                    "VM shut down: the app's process went with it",
                )),
            ),
            (S::Unloaded, S::Loading, None, None, None),
            (S::Loading, S::Booting, None, None, None),
            (S::Error, S::Loading, None, None, None),
        ];
        for (from, to, how, reason, expected) in cases {
            let got = vm_event(*from, *to, *how, *reason);
            let expected = expected.map(|(level, text)| (level, text.to_owned()));
            assert_eq!(got, expected, "{from:?} → {to:?}");
        }
    }
}
