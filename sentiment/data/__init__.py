"""Reading review files, preprocessing, the token cache and the splits: text → clean → tokens → ids."""
