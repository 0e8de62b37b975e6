"""What single units learned, across a corpus: the atlas, ablation, unit pages, passages, steering."""
