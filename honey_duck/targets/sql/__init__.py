"""SQL targets: the dialect seam (`dialect`), the transactional write (`session`), and what
every SQL target and its IO manager share (`target`)."""
