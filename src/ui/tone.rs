//! Which colour of status badge each typed status shows: good, bad, busy or neutral.

use crate::api::status_pages::AvailabilityKind;
use crate::model::{
    ApplicationStatus, DeploymentStatus, OperationStatus, PackageStatus, WebVMState,
};

/// The colour family of a status badge; its name is the `badge--<tone>` CSS modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Working as intended: running, ready, installed, completed.
    Good,
    /// Needs attention: error, failed, runtime missing.
    Bad,
    /// On its way somewhere: loading, installing, starting.
    Busy,
    /// At rest: available, stopped, pending.
    Neutral,
}

impl Tone {
    /// The CSS modifier, as in `badge--good`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Busy => "busy",
            Tone::Neutral => "neutral",
        }
    }
}

/// A status that a [`StatusBadge`](crate::ui::components::StatusBadge) can show.
pub trait BadgeTone: Copy {
    /// The badge's colour.
    fn tone(self) -> Tone;
    /// The badge's text: the status as written on the wire.
    fn label(self) -> &'static str;
}

impl BadgeTone for ApplicationStatus {
    fn tone(self) -> Tone {
        match self {
            ApplicationStatus::Running => Tone::Good,
            ApplicationStatus::Error
            | ApplicationStatus::RuntimeMissing
            | ApplicationStatus::Failed => Tone::Bad,
            ApplicationStatus::Deploying
            | ApplicationStatus::Starting
            | ApplicationStatus::Stopping => Tone::Busy,
            ApplicationStatus::Draft | ApplicationStatus::Deployed | ApplicationStatus::Stopped => {
                Tone::Neutral
            }
        }
    }

    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl BadgeTone for WebVMState {
    fn tone(self) -> Tone {
        match self {
            WebVMState::Ready => Tone::Good,
            WebVMState::Error => Tone::Bad,
            WebVMState::Loading | WebVMState::Booting | WebVMState::Hibernating => Tone::Busy,
            WebVMState::Unloaded => Tone::Neutral,
        }
    }

    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl BadgeTone for PackageStatus {
    fn tone(self) -> Tone {
        match self {
            PackageStatus::Installed => Tone::Good,
            PackageStatus::Error => Tone::Bad,
            PackageStatus::Downloading | PackageStatus::Installing | PackageStatus::Removing => {
                Tone::Busy
            }
            PackageStatus::Available => Tone::Neutral,
        }
    }

    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl BadgeTone for OperationStatus {
    fn tone(self) -> Tone {
        match self {
            OperationStatus::Running | OperationStatus::Completed => Tone::Good,
            OperationStatus::Failed => Tone::Bad,
            OperationStatus::Pending => Tone::Neutral,
        }
    }

    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl BadgeTone for DeploymentStatus {
    fn tone(self) -> Tone {
        match self {
            DeploymentStatus::Completed => Tone::Good,
            DeploymentStatus::Failed => Tone::Bad,
            DeploymentStatus::Preparing
            | DeploymentStatus::Uploading
            | DeploymentStatus::Building
            | DeploymentStatus::Deploying => Tone::Busy,
        }
    }

    fn label(self) -> &'static str {
        self.as_str()
    }
}

impl BadgeTone for AvailabilityKind {
    fn tone(self) -> Tone {
        match self {
            AvailabilityKind::Up => Tone::Good,
            AvailabilityKind::Degraded | AvailabilityKind::Down => Tone::Bad,
            AvailabilityKind::HostOffline => Tone::Neutral,
        }
    }

    fn label(self) -> &'static str {
        AvailabilityKind::label(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks one enum's table: every variant listed exactly once, each with its tone and label.
    fn assert_table<S: BadgeTone + PartialEq + std::fmt::Debug>(
        all: &[S],
        table: &[(S, Tone, &str)],
    ) {
        assert_eq!(
            table.len(),
            all.len(),
            "the table must list every variant once"
        );
        for variant in all {
            let rows: Vec<_> = table
                .iter()
                .filter(|(listed, ..)| listed == variant)
                .collect();
            assert_eq!(rows.len(), 1, "{variant:?} must be listed exactly once");
            let (_, tone, label) = rows[0];
            assert_eq!(variant.tone(), *tone, "tone of {variant:?}");
            assert_eq!(variant.label(), *label, "label of {variant:?}");
        }
    }

    #[test]
    fn tones_of_application_statuses() {
        use ApplicationStatus::*;
        assert_table(
            ApplicationStatus::ALL,
            &[
                (Draft, Tone::Neutral, "draft"),
                (Deploying, Tone::Busy, "deploying"),
                (Deployed, Tone::Neutral, "deployed"),
                (Starting, Tone::Busy, "starting"),
                (Running, Tone::Good, "running"),
                (Stopping, Tone::Busy, "stopping"),
                (Stopped, Tone::Neutral, "stopped"),
                (Error, Tone::Bad, "error"),
                (RuntimeMissing, Tone::Bad, "runtime-missing"),
                (Failed, Tone::Bad, "failed"),
            ],
        );
    }

    #[test]
    fn tones_of_vm_states() {
        use WebVMState::*;
        assert_table(
            WebVMState::ALL,
            &[
                (Unloaded, Tone::Neutral, "unloaded"),
                (Loading, Tone::Busy, "loading"),
                (Booting, Tone::Busy, "booting"),
                (Ready, Tone::Good, "ready"),
                (Hibernating, Tone::Busy, "hibernating"),
                (Error, Tone::Bad, "error"),
            ],
        );
    }

    #[test]
    fn tones_of_package_statuses() {
        use PackageStatus::*;
        assert_table(
            PackageStatus::ALL,
            &[
                (Available, Tone::Neutral, "available"),
                (Downloading, Tone::Busy, "downloading"),
                (Installing, Tone::Busy, "installing"),
                (Installed, Tone::Good, "installed"),
                (Removing, Tone::Busy, "removing"),
                (Error, Tone::Bad, "error"),
            ],
        );
    }

    #[test]
    fn tones_of_operation_statuses() {
        use OperationStatus::*;
        assert_table(
            OperationStatus::ALL,
            &[
                (Pending, Tone::Neutral, "pending"),
                (Running, Tone::Good, "running"),
                (Completed, Tone::Good, "completed"),
                (Failed, Tone::Bad, "failed"),
            ],
        );
    }

    #[test]
    fn tones_of_deployment_statuses() {
        use DeploymentStatus::*;
        assert_table(
            DeploymentStatus::ALL,
            &[
                (Preparing, Tone::Busy, "preparing"),
                (Uploading, Tone::Busy, "uploading"),
                (Building, Tone::Busy, "building"),
                (Deploying, Tone::Busy, "deploying"),
                (Completed, Tone::Good, "completed"),
                (Failed, Tone::Bad, "failed"),
            ],
        );
    }

    #[test]
    fn tone_names_are_the_css_modifiers() {
        let names: Vec<_> = [Tone::Good, Tone::Bad, Tone::Busy, Tone::Neutral]
            .into_iter()
            .map(Tone::as_str)
            .collect();
        assert_eq!(names, ["good", "bad", "busy", "neutral"]);
    }
}
