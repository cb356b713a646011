mod answers;
mod closures;
mod contact;
mod feed;
mod figures;
mod replay;
