"""Reports: funnel, conversion into sales, challenges, costs and ROI."""
