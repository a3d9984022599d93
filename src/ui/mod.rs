//! The user interface: the page frame, reusable components and one module per page.

pub mod chart;
pub mod components;
pub mod download;
pub mod format;
pub mod layout;
pub mod pages;
pub mod tone;
pub mod vm_elsewhere;
pub mod vm_panel;
