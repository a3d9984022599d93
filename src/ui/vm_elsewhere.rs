//! The banner of a tab that does not run the VM: another tab of this browser has it (one tab
//! runs it at a time), with the action that takes it over; and the owner's note while it
//! hands the VM to another tab.

use leptos::prelude::*;

use crate::client::vm_controller::{VmController, VmOwnership, VmViewStoreFields};

/// What the banner says for each ownership; `None` where there is nothing to say.
fn message(ownership: VmOwnership) -> Option<&'static str> {
    Some(match ownership {
        VmOwnership::OtherTab => {
            "The VM runs in another tab of this browser. One tab runs it at a time: here you see the saved records, and apps can't be started."
        }
        VmOwnership::TakingOver => "Asking the other tab to hand the VM over…",
        VmOwnership::OwnerSaving => "The other tab is saving the VM for this one…",
        VmOwnership::NoAnswer => {
            "The other tab did not let go of the VM. Taking it anyway reloads both tabs; what changed there since its last save is lost."
        }
        VmOwnership::HandingOver => {
            "Another tab asked for the VM: saving it, then this tab reloads without it…"
        }
        VmOwnership::Checking | VmOwnership::Owner => return None,
    })
}

/// The banner (nothing while this tab owns the VM, and in the server's render).
#[component]
pub fn VmElsewhereBanner() -> impl IntoView {
    let Some(vm) = use_context::<VmController>() else {
        return ().into_any();
    };
    let ownership = Memo::new(move |_| vm.view.ownership().get());
    (move || {
        let current = ownership.get();
        message(current).map(|text| {
            let waiting = matches!(
                current,
                VmOwnership::TakingOver | VmOwnership::OwnerSaving | VmOwnership::HandingOver
            );
            view! {
                <div class="vm-elsewhere" role="status" data-testid="vm-elsewhere" data-ownership=current.key()>
                    <p>{text}</p>
                    <Show when=move || current == VmOwnership::OtherTab>
                        <button type="button" class="button" data-testid="vm-take-over" on:click=move |_| vm.take_over()>
                            "Run the VM here"
                        </button>
                    </Show>
                    <Show when=move || current == VmOwnership::NoAnswer>
                        <button type="button" class="button button--danger" data-testid="vm-force-take-over" on:click=move |_| vm.force_take_over()>
                            "Take over anyway"
                        </button>
                    </Show>
                    <Show when=move || waiting>
                        <progress class="vm-elsewhere__progress" aria-label="Handing the VM over"></progress>
                    </Show>
                </div>
            }
        })
    })
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_owner_or_an_unknown_tab_gets_no_banner() {
        let cases = [
            (VmOwnership::Checking, false),
            (VmOwnership::Owner, false),
            (VmOwnership::OtherTab, true),
            (VmOwnership::TakingOver, true),
            (VmOwnership::OwnerSaving, true),
            (VmOwnership::NoAnswer, true),
            (VmOwnership::HandingOver, true),
        ];
        for (ownership, banner) in cases {
            assert_eq!(message(ownership).is_some(), banner, "{ownership:?}");
        }
    }
}
