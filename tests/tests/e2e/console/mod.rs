mod board;
mod browser;
