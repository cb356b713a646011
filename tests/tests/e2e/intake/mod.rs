mod access;
mod contact_encryption;
mod contact_release;
mod nearby;
mod photos;
mod retention;
