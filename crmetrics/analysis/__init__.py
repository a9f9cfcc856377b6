"""Analysis methods: RFM, cohort, funnel, ... registered through the `register_analysis_methods` hook."""
