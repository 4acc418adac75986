"""Court-ready captures and analyst views: gap reports, network graphs, web archives, screenshots."""
