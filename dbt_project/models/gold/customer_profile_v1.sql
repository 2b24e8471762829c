-- customer_profile v1: the flat seed schema (no provenance columns), kept for consumers
-- that have not moved to v2. Deprecated: see the model's deprecation_date.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}
select
    customer_id
    {%- for attribute, column, kind in profile_attributes() %},
    {{ column }}
    {%- endfor %},
    profile_resolved_at
from {{ ref('customer_profile', v=2) }}
where {{ c360_in_scope('customer_id') }}
