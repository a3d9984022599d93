//! One module per page; each loads its data through a server function.

mod app_actions;
mod application_detail;
mod application_form;
mod applications;
mod backup;
mod dashboard;
mod join;
mod not_found;
mod packages;
mod settings;
mod settings_form;
mod status;

pub use application_detail::ApplicationDetailPage;
pub use application_form::NewApplicationPage;
pub use applications::ApplicationsPage;
pub use backup::BackupPage;
pub use dashboard::DashboardPage;
pub use join::JoinPage;
pub use not_found::NotFoundPage;
pub use packages::PackagesPage;
pub use settings::SettingsPage;
pub use status::StatusPage;
