mod evidence;
mod plan;
mod report;
mod timeline;
mod trend;
mod verify;
