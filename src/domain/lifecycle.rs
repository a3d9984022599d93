//! State machines for ApplicationStatus, PackageStatus, WebVMState, deployment and package
//! operation status:
//! every legal transition listed once in a table; anything else is refused with an error
//! naming both states.

use std::fmt;

use crate::model::{
    ApplicationStatus, DeploymentStatus, OperationStatus, PackageStatus, WebVMState,
};

/// A transition that the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine} cannot go from '{from}' to '{to}'")]
pub struct TransitionError {
    pub machine: &'static str,
    pub from: String,
    pub to: String,
}

/// A status with a table of legal transitions.
pub trait StateMachine: Copy + Eq + fmt::Display + 'static {
    /// Name used in errors, e.g. `application status`.
    const MACHINE: &'static str;
    /// Every legal `(from, to)` pair, each once.
    const TRANSITIONS: &'static [(Self, Self)];

    /// True when `self → to` is legal.
    fn can_become(self, to: Self) -> bool {
        Self::TRANSITIONS.contains(&(self, to))
    }

    /// `to` if `self → to` is legal, else an error naming both states.
    fn transition(self, to: Self) -> Result<Self, TransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(TransitionError {
                machine: Self::MACHINE,
                from: self.to_string(),
                to: to.to_string(),
            })
        }
    }

    /// The states reachable from `self` in one step, in table order.
    fn next_states(self) -> Vec<Self> {
        Self::TRANSITIONS
            .iter()
            .filter(|(from, _)| *from == self)
            .map(|(_, to)| *to)
            .collect()
    }

    /// True when no transition leaves `self`.
    fn is_terminal(self) -> bool {
        !Self::TRANSITIONS.iter().any(|(from, _)| *from == self)
    }
}

impl StateMachine for ApplicationStatus {
    const MACHINE: &'static str = "application status";
    const TRANSITIONS: &'static [(Self, Self)] = {
        use ApplicationStatus::*;
        &[
            (Draft, Deploying),
            // A draft whose runtimes are missing shows it, and goes back once installed.
            (Draft, RuntimeMissing),
            (Deploying, Deployed),
            (Deploying, RuntimeMissing),
            (Deploying, Failed),
            (Deployed, Starting),
            (Deployed, Deploying),
            (Deployed, RuntimeMissing),
            (Starting, Running),
            (Starting, Stopping),
            (Starting, Failed),
            (Starting, RuntimeMissing),
            // The process ended by itself while starting: a crash, or a clean exit that
            // its policy does not restart.
            (Starting, Error),
            (Starting, Stopped),
            (Running, Stopping),
            (Running, Error),
            // The process exited with code 0 and its policy does not restart it.
            (Running, Stopped),
            (Stopping, Stopped),
            (Stopping, Error),
            (Stopped, Starting),
            (Stopped, Deploying),
            (Stopped, RuntimeMissing),
            // A crashed app is restarted by its policy, stopped by the user, or given up on.
            (Error, Starting),
            (Error, Stopped),
            (Error, Deploying),
            (Error, Failed),
            (Error, RuntimeMissing),
            (Failed, Starting),
            (Failed, Deploying),
            (Failed, RuntimeMissing),
            // Once the runtimes are installed the app can start or be redeployed.
            (RuntimeMissing, Deployed),
            (RuntimeMissing, Starting),
            (RuntimeMissing, Deploying),
            (RuntimeMissing, Draft),
        ]
    };
}

impl StateMachine for PackageStatus {
    const MACHINE: &'static str = "package status";
    const TRANSITIONS: &'static [(Self, Self)] = {
        use PackageStatus::*;
        &[
            (Available, Downloading),
            (Downloading, Installing),
            (Downloading, Available),
            (Downloading, Error),
            (Installing, Installed),
            (Installing, Error),
            // An update downloads the new version of an installed package.
            (Installed, Downloading),
            (Installed, Removing),
            (Removing, Available),
            (Removing, Error),
            // A failed operation is rolled back, retried, or cleaned up.
            (Error, Available),
            (Error, Downloading),
            (Error, Installed),
            (Error, Removing),
        ]
    };
}

impl StateMachine for WebVMState {
    const MACHINE: &'static str = "VM state";
    const TRANSITIONS: &'static [(Self, Self)] = {
        use WebVMState::*;
        &[
            (Unloaded, Loading),
            (Loading, Booting),
            // Restoring a boot snapshot skips booting.
            (Loading, Ready),
            (Loading, Error),
            (Booting, Ready),
            (Booting, Error),
            (Ready, Hibernating),
            (Ready, Booting),
            (Ready, Unloaded),
            (Ready, Error),
            (Hibernating, Ready),
            (Hibernating, Unloaded),
            (Hibernating, Error),
            (Error, Unloaded),
            (Error, Loading),
        ]
    };
}

impl StateMachine for DeploymentStatus {
    const MACHINE: &'static str = "deployment status";
    const TRANSITIONS: &'static [(Self, Self)] = {
        use DeploymentStatus::*;
        &[
            (Preparing, Uploading),
            (Preparing, Building),
            (Preparing, Deploying),
            (Preparing, Failed),
            (Uploading, Building),
            (Uploading, Deploying),
            (Uploading, Failed),
            (Building, Deploying),
            (Building, Failed),
            (Deploying, Completed),
            (Deploying, Failed),
        ]
    };
}

impl StateMachine for OperationStatus {
    const MACHINE: &'static str = "package operation status";
    const TRANSITIONS: &'static [(Self, Self)] = {
        use OperationStatus::*;
        &[
            (Pending, Running),
            (Pending, Failed),
            (Running, Completed),
            (Running, Failed),
        ]
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every pair is listed once and every state appears in the table.
    fn table_is_well_formed<S: StateMachine + Ord + fmt::Debug>(all: &[S]) {
        let unique: BTreeSet<(S, S)> = S::TRANSITIONS.iter().copied().collect();
        assert_eq!(
            unique.len(),
            S::TRANSITIONS.len(),
            "{} has a duplicate",
            S::MACHINE
        );
        for state in all {
            let mentioned = S::TRANSITIONS.iter().any(|(a, b)| a == state || b == state);
            assert!(mentioned, "{state:?} is unreachable in {}", S::MACHINE);
            assert!(!state.can_become(*state), "{state:?} loops onto itself");
        }
    }

    /// Exhaustive: a pair is accepted exactly when it is in the table.
    fn accepts_exactly_the_table<S: StateMachine + fmt::Debug>(all: &[S]) {
        for from in all {
            for to in all {
                let listed = S::TRANSITIONS.contains(&(*from, *to));
                match from.transition(*to) {
                    Ok(state) => assert!(listed && state == *to, "{from:?} -> {to:?}"),
                    Err(error) => {
                        assert!(!listed, "{from:?} -> {to:?}");
                        assert_eq!(error.from, from.to_string());
                        assert_eq!(error.to, to.to_string());
                    }
                }
            }
        }
    }

    #[test]
    fn tables_are_well_formed_and_enforced() {
        table_is_well_formed(ApplicationStatus::ALL);
        table_is_well_formed(PackageStatus::ALL);
        table_is_well_formed(WebVMState::ALL);
        table_is_well_formed(DeploymentStatus::ALL);
        table_is_well_formed(OperationStatus::ALL);
        accepts_exactly_the_table(ApplicationStatus::ALL);
        accepts_exactly_the_table(PackageStatus::ALL);
        accepts_exactly_the_table(WebVMState::ALL);
        accepts_exactly_the_table(DeploymentStatus::ALL);
        accepts_exactly_the_table(OperationStatus::ALL);
    }

    #[test]
    fn transition_table() {
        use ApplicationStatus as A;
        let cases = [
            (A::Draft, A::Deploying, true),
            (A::Draft, A::Running, false),
            (A::Running, A::Stopping, true),
            // A clean exit that the policy does not restart.
            (A::Running, A::Stopped, true),
            (A::Running, A::Failed, false),
            (A::Starting, A::Error, true),
            (A::Stopped, A::Error, false),
            (A::Error, A::Starting, true),
            (A::RuntimeMissing, A::Starting, true),
            (A::Stopped, A::Running, false),
        ];
        for (from, to, legal) in cases {
            assert_eq!(from.transition(to).is_ok(), legal, "{from} -> {to}");
        }
    }

    #[test]
    fn refusal_names_both_states() {
        let error = ApplicationStatus::Draft.transition(ApplicationStatus::Stopped);
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("application status cannot go from 'draft' to 'stopped'".to_owned())
        );
        let error = PackageStatus::Available.transition(PackageStatus::Installed);
        assert_eq!(
            error.map_err(|e| e.to_string()),
            Err("package status cannot go from 'available' to 'installed'".to_owned())
        );
    }

    #[test]
    fn next_states_and_terminal_states() {
        assert_eq!(
            WebVMState::Unloaded.next_states(),
            vec![WebVMState::Loading]
        );
        assert!(DeploymentStatus::Completed.is_terminal());
        assert!(DeploymentStatus::Failed.is_terminal());
        assert!(!DeploymentStatus::Preparing.is_terminal());
        assert_eq!(
            PackageStatus::Installing.next_states(),
            vec![PackageStatus::Installed, PackageStatus::Error]
        );
    }
}
