mod evidence;
mod keyvault;
mod notify_witness;
mod plan;
mod report;
mod timeline;
mod trend;
mod verify;
