with source as (
    select * from {{ source('clever', 'section_teachers') }}
),

final as (
    select
        district_id,
        section_id,
        {{ trimmed('teacher_id') }},
        cast(list_position as integer) as list_position
    from source
)

select * from final
