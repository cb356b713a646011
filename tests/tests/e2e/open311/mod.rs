mod api;
mod clients;
mod formats;
mod replay;
