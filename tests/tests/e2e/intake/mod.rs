mod access;
mod contact_encryption;
mod contact_release;
mod photos;
mod retention;
