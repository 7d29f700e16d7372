mod dataverse;
mod demo;
mod dmf;
mod dual_write;
mod faults;
mod fidelity;
mod fno;
mod real_clients;
