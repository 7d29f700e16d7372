mod evidence;
mod plan;
mod report;
mod timeline;
mod verify;
