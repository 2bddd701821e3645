{{ config(materialized='view') }}
with source as (
    -- An id served twice keeps its newest copy.
    {{ dedupe(source('clever', 'districts'), newest_first='last_sync desc nulls last') }}
),

final as (
    select
        district_id,
        id as clever_district_id,
        nullif(trim(name), '') as name,
        nullif(trim(state), '') as sync_state,
        {{ parse_timestamp('last_sync') }} as last_sync,
        {{ parse_timestamp('pause_start') }} as pause_start,
        {{ parse_timestamp('pause_end') }} as pause_end
    from source
)

select * from final
