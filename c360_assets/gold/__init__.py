"""Gold: dbt resolution, versioned golden profiles, published as Delta (architecture,
"Resolution (gold)")."""
