//! One tab runs the VM: the tab that holds a Web Lock owns it, every other tab of the browser
//! profile shows that and can take it over. Two VMs would write the same saved state and
//! answer the same `/apps/<name>/` requests. The protocol (a BroadcastChannel, the lock, a
//! reload on both sides so that neither keeps stale state) is described in `js/vm_lock.js`.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{VmController, VmOwnership, VmViewStoreFields};
use crate::client::vm::bridge;
use crate::model::WebVMState;

/// How long a take-over waits for the owner to answer, and then to finish saving.
const ANSWER_TIMEOUT_MS: f64 = 10_000.0;
const SAVE_TIMEOUT_MS: f64 = 120_000.0;
const POLL_MS: u64 = 250;

const HANDOVER_REQUEST: &str = "handover-request";
const HANDOVER_STARTED: &str = "handover-started";
const HANDOVER_REFUSED: &str = "handover-refused";
const MARK_TAKE_OVER: &str = "take-over";
const MARK_HANDED_OVER: &str = "handed-over";

#[wasm_bindgen(module = "/js/vm_lock.js")]
extern "C" {
    #[wasm_bindgen(js_name = vmLockSupported)]
    fn vm_lock_supported() -> bool;
    #[wasm_bindgen(js_name = reloadMark)]
    fn reload_mark() -> String;
    #[wasm_bindgen(js_name = acquireVmLock)]
    fn acquire_vm_lock(wait: bool, on_lost: &Closure<dyn Fn()>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = stealVmLock)]
    fn steal_vm_lock(on_lost: &Closure<dyn Fn()>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = vmLockHeld)]
    fn vm_lock_held() -> js_sys::Promise;
    #[wasm_bindgen(js_name = listenForHandover)]
    fn listen_for_handover(on_message: &Closure<dyn Fn(String, String)>);
    #[wasm_bindgen(js_name = postHandover)]
    fn post_handover(kind: &str, reason: &str);
    #[wasm_bindgen(js_name = releaseAndReload)]
    fn release_and_reload(mark: &str);
}

async fn promised_bool(promise: js_sys::Promise) -> bool {
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|value| value.as_bool())
        .unwrap_or(false)
}

impl VmController {
    fn ownership(&self) -> VmOwnership {
        self.view
            .ownership()
            .try_get_untracked()
            .unwrap_or_default()
    }

    fn set_ownership(&self, ownership: VmOwnership) {
        self.view.ownership().try_set(ownership);
    }

    /// Whether this tab may run the VM (checked by every VM action).
    pub(super) fn owns_vm(&self) -> bool {
        self.ownership() == VmOwnership::Owner
    }

    /// On page load: takes the VM if no other tab has it (or, after a hand-over to this tab,
    /// waits for it). True when this tab owns the VM. Browsers without Web Locks can't
    /// coordinate tabs; there every tab owns its VM, as before.
    pub(super) async fn claim_vm(&self) -> bool {
        if !vm_lock_supported() {
            leptos::logging::warn!("VM: this browser has no Web Locks; tabs can't share one VM");
            self.set_ownership(VmOwnership::Owner);
            return true;
        }
        let controller = *self;
        let on_message = Closure::<dyn Fn(String, String)>::new(move |kind: String, reason| {
            controller.on_handover_message(&kind, reason);
        });
        listen_for_handover(&on_message);
        on_message.forget();

        let mark = reload_mark();
        if mark == MARK_HANDED_OVER {
            self.set_ownership(VmOwnership::OtherTab);
            return false;
        }
        let wait = mark == MARK_TAKE_OVER;
        if wait {
            self.set_ownership(VmOwnership::TakingOver);
        }
        let on_lost = Closure::<dyn Fn()>::new(move || controller.vm_taken_away());
        let granted = promised_bool(acquire_vm_lock(wait, &on_lost)).await;
        on_lost.forget();
        self.set_ownership(if granted {
            VmOwnership::Owner
        } else {
            VmOwnership::OtherTab
        });
        granted
    }

    /// Asks the tab that runs the VM to save it and let go; once the lock is free this tab
    /// reloads and resumes the saved VM. Offers a forced take-over when the owner does not
    /// let go in time.
    pub fn take_over(&self) {
        if !self.ownership().elsewhere() {
            return;
        }
        self.set_ownership(VmOwnership::TakingOver);
        self.view.notice().try_set(None);
        post_handover(HANDOVER_REQUEST, "");
        let controller = *self;
        self.spawn(async move {
            let asked = bridge::now_ms();
            loop {
                bridge::sleep(POLL_MS).await;
                let ownership = controller.ownership();
                let limit = match ownership {
                    VmOwnership::TakingOver => ANSWER_TIMEOUT_MS,
                    VmOwnership::OwnerSaving => SAVE_TIMEOUT_MS,
                    // Refused (back to OtherTab), or the page moved on.
                    _ => return,
                };
                if !promised_bool(vm_lock_held()).await {
                    release_and_reload(MARK_TAKE_OVER);
                    return;
                }
                if bridge::now_ms() - asked > limit {
                    controller.set_ownership(VmOwnership::NoAnswer);
                    return;
                }
            }
        });
    }

    /// Takes the VM from a tab that did not answer: steals the lock (that tab reloads
    /// without saving), then reloads here and resumes the last saved state.
    pub fn force_take_over(&self) {
        if !self.ownership().elsewhere() {
            return;
        }
        self.set_ownership(VmOwnership::TakingOver);
        self.spawn(async move {
            let on_lost = Closure::<dyn Fn()>::new(|| {});
            let _stolen = promised_bool(steal_vm_lock(&on_lost)).await;
            on_lost.forget();
            release_and_reload(MARK_TAKE_OVER);
        });
    }

    fn on_handover_message(&self, kind: &str, reason: String) {
        match kind {
            HANDOVER_REQUEST if self.owns_vm() => {
                let controller = *self;
                self.spawn(async move { controller.hand_over().await });
            }
            HANDOVER_STARTED if self.ownership() == VmOwnership::TakingOver => {
                self.set_ownership(VmOwnership::OwnerSaving);
            }
            HANDOVER_REFUSED if self.ownership().elsewhere() => {
                self.set_ownership(VmOwnership::OtherTab);
                self.notice(format!("The other tab kept the VM: {reason}"));
            }
            _ => {}
        }
    }

    /// Another tab asked for the VM: save it (so that it resumes there as it is here), let
    /// go of the lock and reload as a tab without the VM. A VM that can't be saved stays.
    async fn hand_over(&self) {
        self.set_ownership(VmOwnership::HandingOver);
        post_handover(HANDOVER_STARTED, "");
        if self.state() == WebVMState::Ready {
            if let Err(reason) = self.run_hibernate().await {
                post_handover(HANDOVER_REFUSED, &reason);
                self.set_ownership(VmOwnership::Owner);
                return;
            }
        }
        release_and_reload(MARK_HANDED_OVER);
    }

    /// Another tab forced a take-over: it resumes the last saved state, so this tab must not
    /// write one now. It reloads as a tab without the VM.
    fn vm_taken_away(&self) {
        self.set_ownership(VmOwnership::OtherTab);
        release_and_reload(MARK_HANDED_OVER);
    }
}
