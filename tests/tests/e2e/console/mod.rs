mod board;
mod browser;
mod sign_in;
