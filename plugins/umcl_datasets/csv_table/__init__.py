"""The ``csv`` dataset plugin: any CSV, TSV or Parquet table of image paths, texts and labels."""
