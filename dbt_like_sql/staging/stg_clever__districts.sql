{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by last_sync desc nulls last) as copy_number
    from {{ source('clever', 'districts') }}
),

source as (
    -- An id served twice keeps one row.
    select * from numbered where copy_number = 1
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
